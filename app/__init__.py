"""Compassion outcomes: a clinical outcome-tracking API for psychotherapy."""
