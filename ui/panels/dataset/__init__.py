"""The Dataset panel's parts, one job per module, combined by `ui.panels.dataset_panel.DatasetPanel`."""
