from riskops.cli.main import app

app(prog_name="riskops")
