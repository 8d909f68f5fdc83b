"""The ways in: the assistant facade, batch answering, presentation, the HTTP service, feedback, the Gradio UI."""
