@echo off
rem LoRA Studio launcher for Windows. Double-click it: the first time it creates the Python environment in
rem .venv and installs LoRA Studio with visible progress (a few minutes, about 3 GB with CUDA), then opens
rem the app. Later double-clicks open the app directly, without a console window.
setlocal EnableExtensions
cd /d "%~dp0.."
set "TORCH_VERSION=2.13.0"
rem PyPI has only CPU builds of PyTorch for Windows; NVIDIA machines get the CUDA build from this index.
if not defined TORCH_CUDA_INDEX set "TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu128"
set "STAMP=.venv\.lora-studio-app-installed"

rem the stamp is a copy of the lock that was installed: a changed lock (an update) installs again
if exist ".venv\Scripts\pythonw.exe" fc /b "requirements.lock" "%STAMP%" >nul 2>&1 && goto run

echo LoRA Studio: first-time setup (a few minutes; PyTorch is a large download)
set "PY="
py -3 -c "import sys; sys.exit(sys.version_info < (3, 10))" >nul 2>&1 && set "PY=py -3"
if not defined PY python -c "import sys; sys.exit(sys.version_info < (3, 10))" >nul 2>&1 && set "PY=python"
if not defined PY (
  echo.
  echo LoRA Studio needs Python 3.10 or newer. Install it from https://www.python.org/downloads/windows/
  echo and tick "Add python.exe to PATH", then double-click this file again.
  goto failed
)
echo ==^> [1/3] creating the environment in %CD%\.venv
if not exist ".venv\Scripts\python.exe" %PY% -m venv .venv || goto failed
echo ==^> [2/3] installing PyTorch %TORCH_VERSION% (the largest download)
where nvidia-smi >nul 2>&1
if %ERRORLEVEL%==0 (
  echo     NVIDIA GPU found: installing the CUDA build
  ".venv\Scripts\python.exe" -m pip install --progress-bar on "torch==%TORCH_VERSION%" --index-url "%TORCH_CUDA_INDEX%" || goto failed
) else (
  echo     no NVIDIA GPU found: installing the CPU build
  ".venv\Scripts\python.exe" -m pip install --progress-bar on "torch==%TORCH_VERSION%" || goto failed
)
echo ==^> [3/3] installing LoRA Studio and the tested versions of its other libraries (requirements.lock)
".venv\Scripts\python.exe" -m pip install --progress-bar on -r requirements.lock || goto failed
".venv\Scripts\python.exe" -m pip install --quiet --no-deps --no-build-isolation -e . || goto failed
copy /y "requirements.lock" "%STAMP%" >nul
echo ==^> done. Opening LoRA Studio...

:run
start "" ".venv\Scripts\pythonw.exe" -m ui.app %*
exit /b 0

:failed
echo.
echo Setup did not finish. Fix the problem above and double-click LoRA-Studio.bat again;
echo it continues where it stopped.
pause
exit /b 1
