"""What people run on top of the pipeline: the live views of the results (`hhar watch` in the
terminal, `hhar dashboard` in a browser, both reading through `results`) and the whole pipeline
on one machine (`hhar demo`)."""
