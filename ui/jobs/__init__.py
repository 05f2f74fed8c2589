"""The window's one job model: panels `submit` a request to the `JobManager` (the only sender of job
requests to the worker) and follow the `Job` it returns through its signals.
"""

from ui.jobs.job import CANCELLED, DONE, ENDED, FAILED, QUEUED, RUNNING, Job, JobProgress
from ui.jobs.manager import JobManager

__all__ = ["JobManager", "Job", "JobProgress", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED", "ENDED"]
