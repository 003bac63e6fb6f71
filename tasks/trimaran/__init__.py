"""Trimaran: LoadVariationRiskBalancing's score in Python, recordings of its inputs, replays."""
