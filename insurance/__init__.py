"""Payers, coverages, pre-authorizations and the billing work queue (arrives with the insurance issue)."""
