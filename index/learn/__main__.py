"""`python -m index.learn`: fits the answer model (see `index.learn.answer_model`)."""

from index.learn.answer_model import main

raise SystemExit(main())
