"""The engine: workspace, models, datasets, inference, jobs. Never imports Textual."""
