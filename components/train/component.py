"""KFP definition of train: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.runtime.model_versions import FIRST_VERSION


@dsl.container_component
def train(
    train_data: dsl.Input[dsl.Dataset],
    validation_data: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    training_curve: dsl.Output[dsl.HTML],
    label_column: str,
    schema: dsl.Input[dsl.Artifact] = None,
    hyperparameters: dict = {},  # noqa: B006 - KFP needs a literal default
    feature_columns: list = [],  # noqa: B006
    exclude_columns: list = [],  # noqa: B006
    model_version: int = FIRST_VERSION,
    mixed_precision: bool = False,
    distribution: dict = {},  # noqa: B006
    worker_timeout: float = 600.0,
):
    """Trains a binary classifier (Keras MLP) on tabular Parquet splits and exports it.

    Numeric features are standardized and categorical features looked up and embedded
    inside the model, with statistics and vocabularies from the train split, so the exported
    SavedModel takes raw features. Early stopping on validation AUC keeps the best epoch.
    The tf.distribute strategy follows the node: TPU, several workers in ``TF_CONFIG``,
    several GPUs (mirrored), one GPU, or CPU (the shipped image is a CPU build; see README).

    Args:
        train_data: Parquet files (``data-*.parquet`` or any ``*.parquet``) under the
            artifact, e.g. bigquery_split's ``train``. Streamed a row group at a time
            (memory does not grow with rows).
        validation_data: Parquet files, as ``train_data``; drives early stopping.
        schema: Optional TFDV schema (``schema.pbtxt`` under the artifact, as tfdv_schema
            writes it). Gives each feature's kind (BYTES: categorical; FLOAT: numeric; INT:
            numeric unless ``int_domain.is_categorical``), makes its features the default
            feature set, and makes nulls an error where ``presence.min_fraction`` is 1.
            Without it kinds come from the Parquet types (strings categorical, numbers numeric).
        label_column: Binary 0/1 label (integer, boolean or float column); no nulls. Required:
            the data's own name, set by the pipeline.
        hyperparameters: JSON dict (or its text) with any of ``learning_rate`` (0, 10],
            ``hidden_units`` (list of layer sizes, or "64,32"), ``dropout`` [0, 1),
            ``batch_size`` (per replica, >= 1), ``epochs`` >= 1,
            ``early_stopping_patience`` >= 0 (epochs in a row that raise validation AUC by
            at most ``early_stopping_min_delta`` [0, 1], default 0.001, before stopping),
            ``embedding_dim`` (0: automatic), ``seed``.
            Numbers given as text are accepted (tuners pass text). Other keys are an error.
        feature_columns: Feature columns; empty: every column (or schema feature) but the
            label and ``exclude_columns``.
        exclude_columns: Columns never used as features when ``feature_columns`` is empty
            (keys and ids).
        model_version: Version folder of the export (KServe's ``<uri>/<version>/`` layout).
        mixed_precision: float16 on GPUs, bfloat16 on TPUs; declined (and noted) on CPU.
        distribution: Empty: this step trains. Else a multi-worker job this step starts,
            waits for (cancelled when the step is stopped; a retried step resumes it) and
            records: ``backend`` ``vertex`` (a CustomJob: ``project``, ``location``,
            ``machine_type``, optional ``service_account``, ``api_endpoint``) or
            ``kubeflow`` (a Kubeflow Trainer v2 TrainJob: ``namespace``, optional
            ``runtime``, ``cpu``, ``memory``), ``workers`` >= 2, ``image`` (the train
            image the workers run), optional ``accelerator_type`` and
            ``accelerator_count`` per worker, ``poll_interval`` and ``timeout`` (seconds).
            The workers read the inputs and the chief writes the outputs at this step's
            paths: storage they all mount (Vertex AI: ``/gcs/``). Each worker trains on its
            shard of the train files (MultiWorkerMirroredStrategy, a custom loop).
        worker_timeout: Seconds every worker of a multi-worker ``TF_CONFIG`` waits for the
            others to join (then fails naming the ones that did not), and for one collective.

    Returns:
        model: SavedModel at ``<uri>/<model_version>/`` with a ``serving_default`` signature
            on one named raw input per feature (float32 or string, shape [batch]) and one
            output, the probability of label 1. Metadata: framework, versions, features,
            label, hyperparameters, strategy.
        metrics: Loss, accuracy and AUC on train and validation at the best epoch, epochs
            run, examples per second, strategy. Also printed as ``validation-accuracy=...``
            lines for Katib's StdOut collector.
        training_curve: HTML page with loss, accuracy and AUC per epoch (inline SVG).

    Raises (the step fails with exit code 2 and writes no outputs):
        Hyperparameters that are not JSON, unknown or out of range; an empty split; a label
        column that is missing, null or not binary; a feature column the data lacks or that
        the schema requires but is null.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.train.launcher"],
        args=["--executor_input", "{{$}}"],
    )
