"""What benchmarks and tests share: real processes on free ports, a protocol client, speech
made at run time, scoring, Triton's batch statistics, an aiortc client, a fake LLM endpoint."""
