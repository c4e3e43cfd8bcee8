"""The HHAR-like data generator (`hhar data synth`): a calibrated plan of who records what and
when (`plan`), the rows it gives (`stream`), the part files in the real folder's layout
(`synth`) and the figures of a generated set against the real ones (`check`)."""
