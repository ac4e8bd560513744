from pusher.cli import app

app(prog_name="pusher")
