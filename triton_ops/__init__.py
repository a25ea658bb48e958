"""Everything about Triton itself: launching it, the models' tensor contracts, model builds."""
