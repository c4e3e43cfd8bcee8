"""What people run on top of the pipeline: the live view of the results (`hhar watch`) and the
whole pipeline on one machine (`hhar demo`)."""
