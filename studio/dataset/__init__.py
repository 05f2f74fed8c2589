"""Everything the app does with dataset files, without Qt (the Dataset panel only presents it).

- `scan`: images in folders, kohya `N_name` repeats, captions — all at once or streamed in chunks
- `images`: decoding for training (EXIF rotation, RGB, crop box, focus point) and `ImageProblem`
- `check`: per-file checks (broken, not an image, too large, CMYK, 16-bit, alpha, rotated, small,
  duplicates), parallel and cached
- `captions`: `.txt` sidecars written atomically; files changed by other programs are reloaded
- `tags`: pure caption operations (`TagOp`) and tag frequencies
- `edits`: undoable batch edits that restore the files on undo
- `state`: exclude flags, crop boxes, focus points and repeat overrides in `<project>/dataset.json`
- `training`: what training should use (state applied, duplicates dropped)
- `thumbnails`, `thumbnail_pool`: cached thumbnails made by a prioritised thread pool
- `autocaption`: transformers image-to-text or WD14 ONNX captioning, as a worker job
- `importer`: sorting dropped paths; importing copies into a project
- `stream`: a generator run on a thread, polled by the GUI
"""
