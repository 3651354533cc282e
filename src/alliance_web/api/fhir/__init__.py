"""The FHIR R4 facade (``/fhir/r4/``): see :mod:`alliance_web.api.fhir.views`."""
