"""``carbonfed submit JOB --home SITE --job-type T --hours H [--on GPU]``: queue jobs on a live
broker (``POST /v1/jobs``, or ``/v1/jobs/batch`` for ``--count``) with the admin token.

A job's work is given as the hours it runs on ``--gpus`` GPUs of one type (``--on``, V100 by
default); the affinity matrix turns that into the ``work_steps`` the API takes
(``AffinityMatrix.work_steps_for_h``: the broker's default matrix, Gavel's measurements), so
the broker can then place it on faster or slower GPUs. ``--work-steps`` gives steps directly.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from scenarios.commands.admin import add_broker_arguments, admin_token, call_broker
from scenarios.commands.base import Command
from scenarios.commands.options import number
from sites import InputError, default_affinity

REFERENCE_GPU = "V100"  # the GPU the broker's run-time bounds are stated on (api.services.jobs)


def work_steps(args: argparse.Namespace, gpus: int) -> tuple[float, str]:
    """The job's work in steps, and how it was given (for the confirmation line)."""
    if (args.hours is None) == (args.work_steps is None):
        raise InputError("--hours", "", "give the work as --hours H (on --on GPU) or "
                         "--work-steps N, one of them")
    if args.work_steps is not None:
        steps = number(args.work_steps, "--work-steps")
        if not steps > 0:
            raise InputError("--work-steps", args.work_steps, "must be > 0")
        return steps, f"{steps:,.0f} steps"
    hours = number(args.hours, "--hours")
    if not hours > 0:
        raise InputError("--hours", args.hours, "must be > 0")
    try:
        steps = default_affinity().work_steps_for_h(args.job_type, args.on, gpus, hours)
    except ValueError as error:
        raise InputError("--on" if args.job_type in default_affinity().job_types
                         else "--job-type", "", str(error)) from None
    return steps, f"{steps:,.1f} steps = {hours:g} h on {gpus} x {args.on}"


def job_bodies(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.gpus < 1:
        raise InputError("--gpus", str(args.gpus), "must be at least 1")
    if args.count < 1:
        raise InputError("--count", str(args.count), "must be at least 1")
    steps, _ = work_steps(args, args.gpus)
    ids = [args.id] if args.count == 1 else [f"{args.id}-{n}" for n in range(1, args.count + 1)]
    if (args.min_gpus is None) != (args.max_gpus is None):
        raise InputError("--min-gpus", "", "give --min-gpus and --max-gpus together (moldable)")
    if args.checkpoint_overhead_h is not None and not args.preemptible:
        raise InputError("--checkpoint-overhead-h", str(args.checkpoint_overhead_h),
                         "needs --preemptible")
    optional = {"deadline_h": args.deadline_h, "submit_h": args.submit_h,
                "dataset_gb": args.dataset_gb, "min_gpus": args.min_gpus,
                "max_gpus": args.max_gpus, "preemptible": args.preemptible or None,
                "checkpoint_overhead_h": args.checkpoint_overhead_h}
    return [{"id": job_id, "home_site": args.home, "job_type": args.job_type,
             "gpus": args.gpus, "work_steps": steps,
             **{k: v for k, v in optional.items() if v is not None}} for job_id in ids]


class SubmitCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", help="job id (with --count N: ID-1 ... ID-N)")
        parser.add_argument("--home", required=True, help="the job's home site (registered)")
        parser.add_argument("--job-type", required=True,
                            help=f"one of {', '.join(default_affinity().job_types)}")
        parser.add_argument("--gpus", type=int, default=1, help="GPUs it runs on (1)")
        parser.add_argument("--min-gpus", type=int, help="moldable: with --max-gpus, the range "
                            "the broker chooses the count from (holding --gpus)")
        parser.add_argument("--max-gpus", type=int)
        parser.add_argument("--hours", help="its run time on --gpus GPUs of type --on")
        parser.add_argument("--on", default=REFERENCE_GPU, metavar="GPU",
                            help=f"the GPU type --hours is measured on ({REFERENCE_GPU})")
        parser.add_argument("--work-steps", help="its work in training steps, instead of --hours")
        parser.add_argument("--deadline-h", type=float, help="deadline, broker clock hours")
        parser.add_argument("--submit-h", type=float,
                            help="hold it until this broker clock hour (default: now)")
        parser.add_argument("--dataset-gb", type=float, help="data set shipped if it moves")
        parser.add_argument("--preemptible", action="store_true",
                            help="the broker may pause it while it runs and resume it later")
        parser.add_argument("--checkpoint-overhead-h", type=float,
                            help="with --preemptible: busy hours lost at each pause and resume")
        parser.add_argument("--count", type=int, default=1, help="submit N such jobs at once")
        add_broker_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        bodies = job_bodies(args)
        token = admin_token(args)
        if len(bodies) == 1:
            answer = call_broker(args.broker, token, "POST", "/v1/jobs", bodies[0], "submit")
            jobs = [answer]
        else:
            answer = call_broker(args.broker, token, "POST", "/v1/jobs/batch",
                                 {"jobs": bodies}, "submit")
            jobs = answer["jobs"]
        if args.json:
            print(json.dumps(answer, indent=2))
            return 0
        _, how = work_steps(args, args.gpus)
        for job in jobs:
            print(f"job {job['id']} {job['status']}: home {job['home_site']}, "
                  f"{job['job_type']} on {job['gpus']} GPU(s), {how}")
        return 0
