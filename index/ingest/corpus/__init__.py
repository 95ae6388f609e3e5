"""The corpus: reading a folder of news files (text, Markdown, HTML, JSON/JSONL) into `Article`s."""
