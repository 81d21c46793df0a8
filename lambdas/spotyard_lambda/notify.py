"""Publishing to the stack's notification topic (when it has one)."""

from __future__ import annotations

from spotyard_lambda import aws, log, settings


def publish(subject: str, facts: dict[str, object]) -> bool:
    """One message: a subject and `key: value` lines, readable in an e-mail."""
    topic = settings.optional(settings.TOPIC_VARIABLE)
    if not topic:
        return False
    body = "\n".join(f"{key}: {value}" for key, value in facts.items())
    aws.client("sns").publish(TopicArn=topic, Subject=subject[:100], Message=body)
    log.info("notified", subject=subject)
    return True
