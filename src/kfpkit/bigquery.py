"""BigQuery clients, for the components (bigquery_split) and the host (the emulator) alike."""

from __future__ import annotations

from google.cloud import bigquery


def make_client(project: str, location: str, endpoint: str = "") -> bigquery.Client:
    """A BigQuery client; with ``endpoint`` (the emulator) it uses anonymous credentials."""
    if endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project,
            location=location or None,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=project, location=location or None)
