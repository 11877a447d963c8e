"""The worker: Faust app wiring, the batch processor, the model owner, the transport."""
