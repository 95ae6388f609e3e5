"""Search: passages for a question. Dense and keyword retrieval fused, ranked and filtered
(`retrieval`), every weight in one place (`ranking`), candidate answers (`candidates`)."""
