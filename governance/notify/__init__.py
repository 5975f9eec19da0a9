"""People and pipelines told: the outbound event outbox, email notifications, outbound webhooks
(Standard Webhooks), model watches, mail preferences and the event feed.

The workflow calls `governance.notify.outbox.emit(event, ...)` right after `audit.record(...)`, inside
the same transaction: the outbound event, its webhook deliveries and its emails are rows committed
with the audit event (or rolled back with it); tasks enqueued on commit send them.
"""
