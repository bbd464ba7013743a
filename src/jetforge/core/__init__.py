"""The core: package definitions, requirements, resolution, plans, names and labels as
values and pure functions. Nothing here touches the host or imports outside ``core``
(and :mod:`jetforge.errors`) at run time."""
