"""The window's one job model: every long job the worker runs goes through one `JobManager`.

API (for panels and other branches building on it):

- `manager = JobManager(worker_client)` — MainWindow makes one, beside the `WorkerClient`; it is the only
  sender of job requests (`studio.job_requests`) to the worker.
- `job = manager.submit(request, title)` → `Job`: queued at once (its `request_id` is set to `job.id`);
  sent when the worker is ready and idle, first in first out. Starts the worker if none runs.
- `manager.cancel(job)`: a queued job is removed at once (state `cancelled`, `job_removed`); a running one
  gets `Stop` and should end within ~2 s — after that its `detail` says it has not.
- `manager.move(job_id, index) -> bool`: reorder a queued job (index 0 runs next).
- `manager.jobs()`: running, then queued in run order, then ended (newest first); `manager.queued()`,
  `manager.running`, `manager.find(job_id)`.
- `manager.send_control(command)`: Pause / Resume / Stop / SaveNow / SampleNow for the running job.
- `manager.shut_down()`: quitting — the queue is dropped, the running job asked to stop, nothing is sent
  and no worker is started afterwards.
- Signals: `job_added(Job)`, `job_removed(Job)`, `job_changed(Job)`, `order_changed()`.

A `Job` (ui/jobs/job.py) has `id`, `request`, `title`, `kind`, `state` (queued → running → done / failed
/ cancelled), `detail` (e.g. "queued: runs after the training job"), `progress` (`JobProgress`: done,
total, unit, eta_s), `error`/`hint`, `results` (result events with its id), `outputs`, and the signals
`state_changed(str)`, `detail_changed(str)`, `progress_changed(JobProgress)`, `event(object)` (each worker
event of the job, in order) and `ended(str)`.

A worker that dies or is restarted fails the running job with the reason ("the worker stopped: killed by
SIGKILL (exit -9)"); queued jobs stay queued and run when a worker is ready again. `JobsView`
(ui/jobs/jobs_view.py) lists them all with progress, ETA, Cancel and reorder.
"""

from ui.jobs.job import CANCELLED, DONE, ENDED, FAILED, QUEUED, RUNNING, Job, JobProgress
from ui.jobs.manager import JobManager

__all__ = ["JobManager", "Job", "JobProgress", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED", "ENDED"]
