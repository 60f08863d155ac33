"""bigquery_split: repeatable FARM_FINGERPRINT hash split of a BigQuery table. See README.md."""
