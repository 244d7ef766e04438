"""Reading a slotted object's fields at their offsets, for the C renderers (``cimport``ed, no module).

msgspec Structs and slotted dataclasses keep each field in a slot at a fixed offset, read through a
member descriptor: ``getattr`` costs a C renderer a couple of hundred instructions per field (the
type's attribute lookup, then the descriptor), the offset a load. A renderer takes each field's offset
from its class's descriptor once (:func:`offset`) and reads it with :func:`slot` only for objects of
exactly that class.
"""

from cpython.object cimport PyObject


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    PyObject *PyDescr_TYPE_MemberDescr "(PyObject *)&PyMemberDescr_Type"


cdef extern from "structmember.h":
    enum: T_OBJECT_EX


cdef inline Py_ssize_t offset(object cls, str name) except -1:
    """Where ``cls`` keeps field ``name``; ``ImportError`` unless it is an object slot (a build older
    than the class: the module that asks falls back to Python, as when it is not built)."""
    cdef object descriptor = cls.__dict__.get(name)
    cdef object kind = type(descriptor)
    cdef PyMemberDef *member
    if descriptor is None or <PyObject *>kind != PyDescr_TYPE_MemberDescr:
        raise ImportError(f"{cls.__name__}.{name} is not a slot: rebuild the extensions")
    member = (<PyMemberDescrObject *>descriptor).d_member
    if member.type != T_OBJECT_EX:
        raise ImportError(f"{cls.__name__}.{name} is not an object slot: rebuild the extensions")
    return member.offset


cdef inline object slot(object instance, Py_ssize_t at):
    """The field at offset ``at`` of ``instance`` (whose class gave the offset)."""
    cdef PyObject *value = (<PyObject **>((<char *><PyObject *>instance) + at))[0]
    if value == NULL:
        raise AttributeError("a slot with no value")
    return <object>value
