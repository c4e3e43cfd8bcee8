"""Local infrastructure without Docker: a KRaft broker or cluster from Maven Central jars
(`hhar kafka`) and a Spark standalone cluster from the installed pyspark (`hhar spark`)."""
