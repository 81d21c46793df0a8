"""Image keeper Lambda: instances leaving a fleet are saved as AMIs, the fleet's AMI
parameter follows the newest one once it is available, and a daily sweep keeps only the
newest few. Parses the event and delegates to `keeper` and `janitor`."""

from __future__ import annotations

import janitor
import keeper
from spotyard_lambda import events, log
from spotyard_lambda.settings import ImageKeeperSettings

LEAVING = "EC2 Instance-terminate Lifecycle Action"
AMI_STATE = "EC2 AMI State Change"
EXPECTED = {"aws.autoscaling": (LEAVING,), "aws.ec2": (AMI_STATE,), "aws.events": ("Scheduled Event",)}


def handler(event, context):
    parsed = events.parse(event, EXPECTED)
    settings = ImageKeeperSettings.from_environment()
    if parsed.detail_type == LEAVING:
        result = keeper.on_leaving(settings, keeper.LifecycleAction.from_detail(parsed.detail))
    elif parsed.detail_type == AMI_STATE:
        image_id, state = parsed.detail.get("ImageId"), parsed.detail.get("State")
        if not isinstance(image_id, str) or not image_id.startswith("ami-") or not isinstance(state, str):
            raise events.UnparseableEvent(f"AMI state change {parsed.id} has no ImageId and State")
        result = keeper.on_image_state(settings, image_id, state)
    else:
        result = janitor.sweep(settings)
    log.info("images.done", event_id=parsed.id, detail_type=parsed.detail_type, **result)
    return result
