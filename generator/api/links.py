from django.http import Http404


def link_serve(request, token):
    raise Http404
