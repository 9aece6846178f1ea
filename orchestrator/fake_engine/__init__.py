"""A deterministic LLM engine for development, demos, tests and benchmarks.

`manage.py fake_engine` serves the wire format of a real engine (llama.cpp's
llama-server, the OpenAI frontend of vLLM/Triton, or Hugging Face TGI) from
one asyncio process. Output is a fixed text cut into word-sized tokens, paced
by a time-to-first-token and a token rate, so adapters, the dispatcher and
benchmarks can be exercised without a GPU. Faults (dropped connections,
stalls, error statuses, UTF-8 split across writes) are injected from the
command line or per request with a marker in the prompt, e.g.
``[[fault:die_after=3]]``.

Nothing here touches the database: the command runs before migrations.
"""
