"""Evaluation: answers scored against questions with known answers (`newsbot eval`)."""
