"""Everything the app does with dataset files, without Qt (the Dataset panel only presents it): scanning
folders, checking and decoding images, caption sidecars and undoable tag edits, the project's
`dataset.json`, thumbnails, auto-captioning and imports, one module each.
"""
