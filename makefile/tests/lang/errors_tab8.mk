all:
        echo hi
