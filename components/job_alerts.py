"""JobAlerts: the `job_reporter` Lambda, the EventBridge rules that bring it every finished
run of the stack's jobs (AWS Batch job state changes on the stack's job queues, and the
events `spotyard-job` puts from fleet boxes), each job's record of runs, and the two
CloudWatch alarms per job that work while no box is on: N failed runs in a row, and no
success within a given number of hours (a dead man's switch)."""

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import (
    JOB_EVENT_DETAIL_TYPE,
    JOB_EVENT_SOURCE,
    JOB_FAILURE_STREAK_METRIC,
    JOB_METRICS_NAMESPACE,
    JOB_STREAK_LIMIT,
    JOB_SUCCESS_METRIC,
    MAX_SUCCESS_WITHIN_HOURS,
    job_alarm_name,
    job_parameter,
)
from spotyard_lambda.settings import TOPIC_VARIABLE, JobReporterSettings, ReportedJob

from components.args import RoleArgs, as_args
from components.iam import allow
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, Trigger

HOUR_SECONDS = 3600  # the no-success alarm's period (MAX_SUCCESS_WITHIN_HOURS of them at most)
# The streak is published at each run; one minute is the shortest standard-resolution period.
STREAK_PERIOD_SECONDS = 60
BATCH_FINAL_STATES = ["SUCCEEDED", "FAILED"]


@dataclass
class AlertedJob:
    """One job: its name, its alarms (None: that alarm is not made), and, for a job run on
    AWS Batch, the name of its job definition (events are matched to jobs by it)."""

    name: str
    after_failures: int | None = None  # 1..JOB_STREAK_LIMIT failed runs in a row
    success_within_hours: int | None = None  # 1..MAX_SUCCESS_WITHIN_HOURS
    batch_job_definition: pulumi.Input[str] | None = None


@dataclass
class JobAlertsArgs:
    stack_tag: str  # `<project>/<stack>`: fleet boxes' events carry it
    jobs: list[AlertedJob]
    job_queue_arns: list[pulumi.Input[str]] | None = field(default_factory=list)
    topic_arn: pulumi.Input[str] | None = None
    iam: RoleArgs | None = RoleArgs()


def _check(job: AlertedJob) -> None:
    if job.after_failures is not None and not 1 <= job.after_failures <= JOB_STREAK_LIMIT:
        raise pulumi.RunError(f"job {job.name}: after_failures must be 1 to {JOB_STREAK_LIMIT}")
    if job.success_within_hours is not None and not 1 <= job.success_within_hours <= MAX_SUCCESS_WITHIN_HOURS:
        raise pulumi.RunError(f"job {job.name}: success_within_hours must be 1 to {MAX_SUCCESS_WITHIN_HOURS}")


class JobAlerts(pulumi.ComponentResource):
    def __init__(self, name: str, args: JobAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:JobAlerts", name, None, opts)
        args = as_args(JobAlertsArgs, args)
        for job in args.jobs:
            _check(job)
        project, stack = pulumi.get_project(), pulumi.get_stack()
        records = {
            job.name: aws.ssm.Parameter(
                f"{name}-{job.name}-runs",
                name=job_parameter(project, stack, job.name),
                type="String",
                value="{}",
                description=f"spotyard job {job.name}: its recent runs (owned by the job reporter)",
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
            )
            for job in args.jobs
        }
        statements = [
            allow(
                "RecordRuns",
                ["ssm:GetParameter", "ssm:PutParameter"],
                [record.arn for record in records.values()],
            ),
            allow(
                "PublishJobMetrics",
                ["cloudwatch:PutMetricData"],
                "*",  # PutMetricData has no resource; the namespace condition scopes it
                {"StringEquals": {"cloudwatch:namespace": JOB_METRICS_NAMESPACE}},
            ),
        ]
        if args.topic_arn is not None:
            statements.append(allow("Notify", ["sns:Publish"], args.topic_arn))
        # One queue per kind of compute (EC2, Fargate) serves many jobs: each ARN once.
        queues = pulumi.Output.all(*args.job_queue_arns).apply(lambda arns: sorted(set(arns)))
        triggers = []
        if any(job.batch_job_definition is None for job in args.jobs):
            triggers.append(
                Trigger(
                    "box-runs",
                    event_pattern={
                        "source": [JOB_EVENT_SOURCE],
                        "detail-type": [JOB_EVENT_DETAIL_TYPE],
                        "detail": {"stack": [args.stack_tag]},
                    },
                    description="runs of jobs on fleet boxes (spotyard-job)",
                )
            )
        if args.job_queue_arns:
            triggers.append(
                Trigger(
                    "batch-runs",
                    event_pattern={
                        "source": ["aws.batch"],
                        "detail-type": ["Batch Job State Change"],
                        "detail": {"jobQueue": queues, "status": BATCH_FINAL_STATES},
                    },
                    description="finished AWS Batch jobs of the stack's job queues",
                )
            )
        self.function = LambdaFunction(
            f"{name}-reporter",
            LambdaFunctionArgs(
                source="job_reporter",
                description="spotyard: count job runs, notify failed ones",
                statements=statements,
                settings=pulumi.Output.all(
                    queues=queues,
                    definitions=pulumi.Output.all(*[job.batch_job_definition for job in args.jobs]),
                    parameters=pulumi.Output.all(*[record.name for record in records.values()]),
                ).apply(
                    lambda values: JobReporterSettings(
                        stack=args.stack_tag,
                        jobs={
                            job.name: ReportedJob(runs_parameter=parameter, batch_job_definition=definition)
                            for job, parameter, definition in zip(
                                args.jobs, values["parameters"], values["definitions"], strict=True
                            )
                        },
                        job_queues=tuple(values["queues"]),
                    )
                ),
                variables={TOPIC_VARIABLE: args.topic_arn if args.topic_arn is not None else ""},
                triggers=triggers,
                alarm_topic_arn=args.topic_arn,
                timeout_seconds=60,
                iam=args.iam,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        actions = [args.topic_arn] if args.topic_arn is not None else []
        for job in args.jobs:
            dimensions = {"Stack": args.stack_tag, "Job": job.name}
            if job.after_failures is not None:
                # The streak is published at each run and nothing in between: while the box is off the
                # alarm keeps its state (`ignore`) until a run changes the streak.
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{job.name}-failed-in-a-row",
                    name=job_alarm_name(project, stack, job.name, "failed-in-a-row"),
                    alarm_description=f"spotyard job {job.name} failed {job.after_failures} runs in a row",
                    namespace=JOB_METRICS_NAMESPACE,
                    metric_name=JOB_FAILURE_STREAK_METRIC,
                    dimensions=dimensions,
                    statistic="Maximum",
                    period=STREAK_PERIOD_SECONDS,
                    evaluation_periods=1,
                    threshold=job.after_failures,
                    comparison_operator="GreaterThanOrEqualToThreshold",
                    treat_missing_data="ignore",
                    alarm_actions=actions,
                    ok_actions=actions,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            if job.success_within_hours is not None:
                # A dead man's switch: every hour without a success breaches, a missing hour too (no run
                # at all: the box never started, the schedule is gone, Spot had no capacity); all
                # `success_within_hours` hours breaching raise the alarm.
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{job.name}-no-success",
                    name=job_alarm_name(project, stack, job.name, "no-success"),
                    alarm_description=f"spotyard job {job.name} has not succeeded within "
                    f"{job.success_within_hours} hours",
                    namespace=JOB_METRICS_NAMESPACE,
                    metric_name=JOB_SUCCESS_METRIC,
                    dimensions=dimensions,
                    statistic="Sum",
                    period=HOUR_SECONDS,
                    evaluation_periods=job.success_within_hours,
                    datapoints_to_alarm=job.success_within_hours,
                    threshold=1,
                    comparison_operator="LessThanThreshold",
                    treat_missing_data="breaching",
                    alarm_actions=actions,
                    ok_actions=actions,
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs({"functionArn": self.function.function.arn})
