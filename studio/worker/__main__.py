"""`python -m studio.worker`: the worker process (see `studio.worker.process`)."""

from studio.worker.process import main

if __name__ == "__main__":
    main()
