"""The trainer's core, shared by the train and katib_tune components (train image family):
feature selection, the Keras model, the tf.distribute strategy, fitting and export (trainer),
the multi-worker loop built on the trainer's parts (distributed), the choice between the two
(run, the entry point), the TFDV schema reader (schema), and the metric names it prints for
tuners (objective_metrics, TensorFlow-free). Imported only inside the train image or its test
environment."""
