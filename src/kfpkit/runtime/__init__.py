"""kfp-free runtime shared by every component's launcher (runs inside the images)."""
