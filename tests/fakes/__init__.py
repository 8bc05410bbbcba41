"""Loopback fakes of upstream providers' APIs, following their documented request and response shapes."""
