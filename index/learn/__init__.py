"""Learning the models newsbot ships, from questions with known answers."""
