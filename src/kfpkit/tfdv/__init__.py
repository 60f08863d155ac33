"""Runtime shared by the TFDV components (tfdv image family): input reading, artifact files,
self-contained HTML reports. Imported only inside the tfdv image or its test environment."""
