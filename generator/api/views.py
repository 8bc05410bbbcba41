from django.http import JsonResponse


def _todo(request, *args, **kwargs):
    return JsonResponse({"error_code": "1000", "error_type": "general", "error_message": "not built yet", "error_details": {}}, status=501)


generate = generation_detail = generation_cancel = account = openapi = docs = _todo
