from generator.api.views import _todo

storage_types = storage_collection = storage_item = _todo
