"""Events to other systems: written to an outbox in the transaction of the change that causes
them, then delivered to webhook subscribers, signed, retried until acknowledged."""
