"""A typed job request as the command the running worker understands.

Once the worker's protocol lists the request classes themselves (the seam work of issue 14), a request
is its own command and goes out as it is. Until then the worker knows `Start` (training) and
`RunJob(kind, params)` (the mixer's jobs), and this module is the one place that spells a request that
way; it goes when the protocol no longer has `RunJob`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from studio.job_requests import (JobRequest, MixBakeRequest, MixExportRequest, MixGridRequest, MixPreviewRequest,
                                 PlainCopyRequest, TrainRequest)
from studio.worker import protocol as p


class NotAWorkerJob(ValueError):
    """The running worker has no job for this request."""


def to_command(request: JobRequest) -> Any:
    if p.COMMAND_TYPES.get(type(request).type) is type(request):
        return request  # the protocol carries typed requests
    if isinstance(request, TrainRequest):
        return p.Start(config_toml=request.config_toml, project_file=request.project_file,
                       resume_from=request.resume_from, run_dir=request.run_dir)
    return p.RunJob(kind=type(request).type, params={**_params(request), "request_id": request.request_id})


def _params(request: JobRequest) -> dict[str, Any]:
    from studio.mix.messages import entry_to_dict, request_to_dict

    if isinstance(request, MixPreviewRequest):
        return {"base": request.base, "out": request.out, "request": request_to_dict(request.request),
                "device": request.device}
    if isinstance(request, MixGridRequest):
        return {"base": request.base, "out": request.out, "request": request_to_dict(request.request),
                "x": asdict(request.x), "y": asdict(request.y) if request.y else None, "device": request.device}
    if isinstance(request, MixExportRequest):
        return {"loras": [entry_to_dict(e) for e in request.loras], "out": request.out, "rank": request.rank,
                "dtype": request.dtype}
    if isinstance(request, MixBakeRequest):
        return {"base": request.base, "loras": [entry_to_dict(e) for e in request.loras], "out": request.out,
                "dtype": request.dtype}
    if isinstance(request, PlainCopyRequest):
        return {"src": request.src, "out": request.out, "rank": request.rank, "base": request.base,
                "dtype": request.dtype}
    raise NotAWorkerJob(f"this version of the worker cannot run a {type(request).title} job")
