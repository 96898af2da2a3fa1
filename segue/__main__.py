from segue.cli import app

app()
