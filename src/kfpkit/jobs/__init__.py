"""Remote jobs a step starts and waits on (kfp-free; runs inside the images): ``wait`` (the
generic poll loop with deadlines, cancellation and progress) and ``kube`` (Kubernetes custom
objects through it)."""
