"""The window's one job model: every long job the worker runs goes through one `JobManager`.

The manager (ui/jobs/manager.py) is the only sender of job requests (`studio.job_requests`) to the worker:
panels `submit` a request and follow the `Job` it returns (ui/jobs/job.py) through its signals, without
knowing about the worker, the queue or each other. `JobsView` (ui/jobs/jobs_view.py) lists every job with
progress, ETA, Cancel and reorder.
"""

from ui.jobs.job import CANCELLED, DONE, ENDED, FAILED, QUEUED, RUNNING, Job, JobProgress
from ui.jobs.manager import JobManager

__all__ = ["JobManager", "Job", "JobProgress", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED", "ENDED"]
