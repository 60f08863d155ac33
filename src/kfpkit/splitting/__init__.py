"""How rows are assigned to splits, for every engine: the key encoding (keys) and FarmHash
Fingerprint64 over Arrow arrays (farmhash). See README.md."""
