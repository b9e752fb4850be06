"""Payers, coverages, pre-authorizations and the billing work queue (the insurance issue)."""
