"""Reports made from the store for people: the director's monthly report (:mod:`collector.reports.monthly`)
and when it is sent (:mod:`collector.reports.schedule`)."""
