"""The web demo and REST API (scripts/serve.py): keypoints.web.app.create_app."""
