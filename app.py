"""政策问答 — start the chat UI and its Gradio API on the knowledge base.

    .venv/bin/python app.py [--host 127.0.0.1] [--port 7860] [--index DIR] [--corpus DIR]

The UI, its API endpoints and the launch options live in ``rag/serve/ui.py``."""
import sys

from rag.serve.ui import main

if __name__ == "__main__":
    sys.exit(main())
